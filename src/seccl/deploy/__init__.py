"""SecCL deployed on Flower: every participant its own process, key, data and chain connection."""
