"""lgn.sort"""
