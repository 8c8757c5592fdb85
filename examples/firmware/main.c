/* Classify the embedded samples with the generated model and print "pred INDEX SINGLE BATCH". */
#include "model.h"
#include "samples.h"
#include "semihosting.h"

static char *put_uint(char *out, unsigned value)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value);
    while (n) {
        *out++ = digits[--n];
    }
    return out;
}

static int batch_classes[NUM_SAMPLES];

int main(void)
{
    unsigned i;
    char line[48];
    sh_write0("lgn firmware: " MODEL_NAME "\n");
    model_predict_batch(&samples[0][0], NUM_SAMPLES, batch_classes);
    for (i = 0; i < NUM_SAMPLES; ++i) {
        char *p = line;
        int single = model_predict(samples[i]);
        *p++ = 'p', *p++ = 'r', *p++ = 'e', *p++ = 'd', *p++ = ' ';
        p = put_uint(p, i);
        *p++ = ' ';
        p = put_uint(p, (unsigned)single);
        *p++ = ' ';
        p = put_uint(p, (unsigned)batch_classes[i]);
        *p++ = '\n';
        *p = '\0';
        sh_write0(line);
    }
    sh_write0("done\n");
    return 0;
}
