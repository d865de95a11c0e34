"""SecCL: secure collaborative learning audited by a blockchain."""
