"""Price monitoring (交易价格动态监测): every live listing against the supplier's declared e-commerce
price, the mall's own deal prices for the same brand and model, and the agreement price; alerts the
procurement center works through (ask the supplier, freeze the listing, close with a note)."""
