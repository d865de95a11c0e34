"""Learning layer: data, the model, local training, sparse selection, evaluation, aggregation."""
