"""Built-in datasets: synthetic radiographs and readers of public chest X-ray formats."""
