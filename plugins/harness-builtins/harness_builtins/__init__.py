"""Built-in datasets, models and explainers of the harness, published as a third party would."""
