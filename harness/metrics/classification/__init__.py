"""Classification metrics of predicted probabilities against labels (scikit-learn)."""
