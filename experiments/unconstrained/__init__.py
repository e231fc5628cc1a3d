"""Free-feature configs of P1, P2 and P3: the embeddings are the parameters."""
