"""Roles: the participant and the parameter server, honest and adversarial."""
