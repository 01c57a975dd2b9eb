"""The single-track model being learned (CoRL 2024, appendix A.1) and its vehicle parameters."""
