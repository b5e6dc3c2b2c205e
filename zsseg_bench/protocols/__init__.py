"""Task protocols other than the generalized zero-shot one (the episodic fss-zeroshot)."""
