"""lgn.data"""
