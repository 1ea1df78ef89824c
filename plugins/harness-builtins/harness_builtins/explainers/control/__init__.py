"""Control explainers that ignore the model: random attributions and Sobel edges."""
