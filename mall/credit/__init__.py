"""Supplier performance and credit: the events behind a score (`models`, recorded by `record`), the
versioned formula (`rules`), and the score computed, shown and ranked (`service`)."""
