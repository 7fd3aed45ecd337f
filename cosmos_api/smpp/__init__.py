"""The SMPP route's client side: PDU codec, text encodings, answer mapping, the bind session."""
