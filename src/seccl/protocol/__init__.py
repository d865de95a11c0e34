"""Protocol layer: the messages, their canonical encoding, digests, signatures, store and evidence."""
