"""lgn.render"""
