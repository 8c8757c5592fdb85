/* Fused CPU kernels of lgn.nn, built by lgn/nn/_native.py: the relaxed LUT layer and learned
 * source selection.
 *
 * Relaxed LUT layer (see lgn/nn/lut.py): forward and backward of the exact expectation of
 * k-input truth tables (k = 1..6) under independent Bernoulli inputs, for the batch columns
 * [b0, b1) of a layer whose input is stored transposed, xT (inputs, batch), int64 wiring
 * inputs (k, nodes) and tables (nodes, 2^k); input j of a node is bit j of the table index.
 *
 * The split of the torch path: the pattern probabilities of the p = k/2 low inputs are contracted
 * with the table seen as a 2^q x 2^p matrix (q = k - p), then the 2^q rows are interpolated over
 * the high inputs, highest first. A block of LANES samples lives in vector registers (GCC/Clang
 * vector extensions), each k gets its own fully unrolled copy, and nothing per sample and node is
 * kept between the passes: the backward pass recomputes its block's forward.
 * REAL is float or double (-DREAL=...).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef REAL
#define REAL float
#endif
#define MAX_K 6
#define MAX_SIDE 8 /* 2^p and 2^q are at most 2^3 */
#define INLINE static inline __attribute__((always_inline))
/* One block of samples is one vector register of the target (-march=native). */
#if defined(__AVX512F__)
#define VECTOR_BYTES 64
#elif defined(__AVX__)
#define VECTOR_BYTES 32
#else
#define VECTOR_BYTES 16
#endif

typedef REAL vec __attribute__((vector_size(VECTOR_BYTES)));
#define LANES (sizeof(vec) / sizeof(REAL))

/* The w <= LANES values at `from`, zero in the other lanes. */
INLINE vec load(const REAL *from, size_t w) {
    vec v = {0};
    if (w == LANES)
        memcpy(&v, from, sizeof v);
    else
        memcpy(&v, from, w * sizeof(REAL));
    return v;
}

/* The block's forward. stages: the low pattern probabilities, stage j (2^j patterns of inputs
 * 0..j-1) at offset 2^j - 1, the last one (stage p) being contracted with the table. levels:
 * level 0 = the 2^q rows at offset 0, then one level per high input, each half the size of the
 * one before, packed after it. Returns the output. */
INLINE vec forward_block(int p, int q, const REAL *table, const vec *x, vec *stages, vec *levels) {
    stages[0] = (vec){0} + 1;
    for (int j = 0; j < p; j++) {
        const vec *stage = stages + (1 << j) - 1;
        vec *next = stages + (2 << j) - 1;
        for (int c = 0; c < 1 << j; c++) {
            next[c + (1 << j)] = stage[c] * x[j];
            next[c] = stage[c] - next[c + (1 << j)];
        }
    }
    const vec *patterns = stages + (1 << p) - 1;
    for (int r = 0; r < 1 << q; r++) {
        vec row = patterns[0] * table[r << p];
        for (int c = 1; c < 1 << p; c++) row += patterns[c] * table[(r << p) + c];
        levels[r] = row;
    }
    int offset = 0;
    for (int j = p + q - 1; j >= p; j--) { /* lerp by input j: 2^(j-p+1) entries -> 2^(j-p) */
        int h = 1 << (j - p);
        const vec *level = levels + offset;
        vec *next = levels + offset + 2 * h;
        for (int i = 0; i < h; i++) next[i] = level[i] + x[j] * (level[i + h] - level[i]);
        offset += 2 * h;
    }
    return levels[offset];
}

/* The block's backward from the output gradient g: the inputs' gradients into gx[0..k-1] (when
 * need_x) and the table's, per lane, added to accumulated[0..2^k-1]. */
INLINE void backward_block(int p, int q, const REAL *table, const vec *x, vec g, int need_x,
                           vec *gx, vec *accumulated) {
    vec stages[2 * MAX_SIDE - 1], levels[2 * MAX_SIDE - 1], grad[MAX_SIDE], grad_patterns[MAX_SIDE];
    forward_block(p, q, table, x, stages, levels);
    grad[0] = g;
    int offset = (2 << q) - 2; /* the output's level */
    for (int j = p; j < p + q; j++) {
        int h = 1 << (j - p);
        offset -= 2 * h; /* the level that input j interpolated */
        const vec *level = levels + offset;
        vec d = {0};
        for (int i = 0; i < h; i++) {
            d += grad[i] * (level[i + h] - level[i]);
            grad[i + h] = grad[i] * x[j];
            grad[i] -= grad[i + h];
        }
        gx[j] = d;
    }
    const vec *patterns = stages + (1 << p) - 1;
    for (int c = 0; c < 1 << p; c++) {
        vec d = grad[0] * table[c];
        for (int r = 1; r < 1 << q; r++) d += grad[r] * table[(r << p) + c];
        grad_patterns[c] = d;
    }
    if (accumulated)
        for (int r = 0; r < 1 << q; r++)
            for (int c = 0; c < 1 << p; c++) accumulated[(r << p) + c] += grad[r] * patterns[c];
    if (!need_x) return;
    for (int j = p - 1; j >= 0; j--) { /* stage j+1 was built from stage j by input j */
        int h = 1 << j;
        const vec *stage = stages + h - 1;
        vec d = {0};
        for (int c = 0; c < h; c++) {
            vec step = grad_patterns[c + h] - grad_patterns[c];
            d += stage[c] * step;
            grad_patterns[c] += x[j] * step;
        }
        gx[j] = d;
    }
}

INLINE void forward_nodes(int p, int q, size_t nodes, size_t batch, size_t b0, size_t b1,
                          const REAL *xT, const int64_t *inputs, const REAL *tables, REAL *yT) {
    int k = p + q;
    for (size_t n = 0; n < nodes; n++) {
        const REAL *table = tables + (n << k), *rows[MAX_K];
        for (int j = 0; j < k; j++) rows[j] = xT + (size_t)inputs[(size_t)j * nodes + n] * batch;
        for (size_t b = b0; b < b1; b += LANES) {
            size_t w = b1 - b < LANES ? b1 - b : LANES;
            vec x[MAX_K], stages[2 * MAX_SIDE - 1], levels[2 * MAX_SIDE - 1];
            for (int j = 0; j < k; j++) x[j] = load(rows[j] + b, w);
            vec out = forward_block(p, q, table, x, stages, levels);
            memcpy(yT + n * batch + b, &out, w * sizeof(REAL));
        }
    }
}

INLINE void backward_nodes(int p, int q, size_t nodes, size_t batch, size_t b0, size_t b1,
                           const REAL *xT, const int64_t *inputs, const REAL *tables,
                           const REAL *gyT, REAL *gx, REAL *gtables) {
    int k = p + q;
    for (size_t n = 0; n < nodes; n++) {
        const REAL *table = tables + (n << k), *rows[MAX_K];
        REAL *grad_rows[MAX_K];
        vec accumulated[1 << MAX_K];
        for (int j = 0; j < k; j++) {
            size_t source = (size_t)inputs[(size_t)j * nodes + n];
            rows[j] = xT + source * batch;
            grad_rows[j] = gx ? gx + source * batch : NULL;
        }
        for (int i = 0; i < 1 << k; i++) accumulated[i] = (vec){0};
        for (size_t b = b0; b < b1; b += LANES) {
            size_t w = b1 - b < LANES ? b1 - b : LANES;
            vec x[MAX_K], grad_x[MAX_K];
            for (int j = 0; j < k; j++) x[j] = load(rows[j] + b, w);
            backward_block(p, q, table, x, load(gyT + n * batch + b, w), gx != NULL, grad_x,
                           gtables ? accumulated : NULL);
            if (gx)
                for (int j = 0; j < k; j++) {
                    vec sum = load(grad_rows[j] + b, w) + grad_x[j];
                    memcpy(grad_rows[j] + b, &sum, w * sizeof(REAL));
                }
        }
        if (gtables)
            for (int i = 0; i < 1 << k; i++) {
                REAL sum = 0;
                for (size_t l = 0; l < LANES; l++) sum += accumulated[i][l];
                gtables[(n << k) + i] = sum;
            }
    }
}

/* yT (nodes, batch): the relaxed outputs, columns [b0, b1). */
void lut_forward(int k, size_t nodes, size_t batch, size_t b0, size_t b1, const REAL *xT,
                 const int64_t *inputs, const REAL *tables, REAL *yT) {
    switch (k) {
    case 1: forward_nodes(0, 1, nodes, batch, b0, b1, xT, inputs, tables, yT); break;
    case 2: forward_nodes(1, 1, nodes, batch, b0, b1, xT, inputs, tables, yT); break;
    case 3: forward_nodes(1, 2, nodes, batch, b0, b1, xT, inputs, tables, yT); break;
    case 4: forward_nodes(2, 2, nodes, batch, b0, b1, xT, inputs, tables, yT); break;
    case 5: forward_nodes(2, 3, nodes, batch, b0, b1, xT, inputs, tables, yT); break;
    case 6: forward_nodes(3, 3, nodes, batch, b0, b1, xT, inputs, tables, yT); break;
    default: break;
    }
}

/* From gyT (nodes, batch), columns [b0, b1): the input gradient added into gx (inputs, batch) and
 * the table gradient of these columns written to gtables (nodes, 2^k); either may be NULL. */
void lut_backward(int k, size_t nodes, size_t batch, size_t b0, size_t b1, const REAL *xT,
                  const int64_t *inputs, const REAL *tables, const REAL *gyT, REAL *gx, REAL *gtables) {
    switch (k) {
    case 1: backward_nodes(0, 1, nodes, batch, b0, b1, xT, inputs, tables, gyT, gx, gtables); break;
    case 2: backward_nodes(1, 1, nodes, batch, b0, b1, xT, inputs, tables, gyT, gx, gtables); break;
    case 3: backward_nodes(1, 2, nodes, batch, b0, b1, xT, inputs, tables, gyT, gx, gtables); break;
    case 4: backward_nodes(2, 2, nodes, batch, b0, b1, xT, inputs, tables, gyT, gx, gtables); break;
    case 5: backward_nodes(2, 3, nodes, batch, b0, b1, xT, inputs, tables, gyT, gx, gtables); break;
    case 6: backward_nodes(3, 3, nodes, batch, b0, b1, xT, inputs, tables, gyT, gx, gtables); break;
    default: break;
    }
}

/* Learned source selection (lgn/nn/connectivity.py): slot s of yT (slots, batch) reads
 * sum_c probs[s, c] xT[candidates[s, c]], with candidates and probs (slots, m); columns [b0, b1). */
void select_forward(size_t slots, size_t m, size_t batch, size_t b0, size_t b1, const REAL *xT,
                    const int64_t *candidates, const REAL *probs, REAL *yT) {
    for (size_t s = 0; s < slots; s++) {
        const int64_t *sources = candidates + s * m;
        const REAL *weights = probs + s * m;
        for (size_t b = b0; b < b1; b += LANES) {
            size_t w = b1 - b < LANES ? b1 - b : LANES;
            vec sum = {0};
            for (size_t c = 0; c < m; c++) sum += load(xT + (size_t)sources[c] * batch + b, w) * weights[c];
            memcpy(yT + s * batch + b, &sum, w * sizeof(REAL));
        }
    }
}

/* From gyT (slots, batch), columns [b0, b1): the input gradient added into gx (inputs, batch) and
 * the probabilities' gradient of these columns written to gprobs (slots, m); either may be NULL. */
void select_backward(size_t slots, size_t m, size_t batch, size_t b0, size_t b1, const REAL *xT,
                     const int64_t *candidates, const REAL *probs, const REAL *gyT, REAL *gx, REAL *gprobs) {
    for (size_t s = 0; s < slots; s++) {
        const REAL *grad = gyT + s * batch;
        for (size_t c = 0; c < m; c++) {
            size_t source = (size_t)candidates[s * m + c];
            const REAL *row = xT + source * batch;
            REAL *grad_row = gx ? gx + source * batch : NULL, weight = probs[s * m + c];
            vec dot = {0};
            for (size_t b = b0; b < b1; b += LANES) {
                size_t w = b1 - b < LANES ? b1 - b : LANES;
                vec g = load(grad + b, w);
                if (gprobs) dot += load(row + b, w) * g;
                if (grad_row) {
                    vec sum = load(grad_row + b, w) + g * weight;
                    memcpy(grad_row + b, &sum, w * sizeof(REAL));
                }
            }
            if (gprobs) {
                REAL total = 0;
                for (size_t l = 0; l < LANES; l++) total += dot[l];
                gprobs[s * m + c] = total;
            }
        }
    }
}
