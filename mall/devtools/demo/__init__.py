"""The parts of the demo data `mall.devtools.seed` makes: organizations and users, listings, trading history."""
