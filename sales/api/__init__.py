"""REST API for sales, customers and products (DESIGN §4)."""
