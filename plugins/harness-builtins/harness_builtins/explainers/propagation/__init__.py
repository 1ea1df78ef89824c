"""Layer-wise relevance propagation through Zennit, with architecture canonizers."""
