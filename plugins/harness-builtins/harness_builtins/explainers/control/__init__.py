"""Control explainers that ignore the model: random maps, Sobel edges, ground-truth masks."""
