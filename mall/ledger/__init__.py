"""The disclosure ledger and what reads it: publication, the public feed's formats, exports, push."""
