"""Demo data and the bulk listing generator: tools for trying the mall, not the product."""
