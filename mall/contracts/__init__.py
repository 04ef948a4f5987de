"""The e-contract as a signed document: the PDF made from the order (pdf), the certificates each
organization signs with (keys), the signer adapter and verification (signing), and the steps that
sign and file it (service)."""
