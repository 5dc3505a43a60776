"""The equal-compute study: ELECTRA vs MLM vs random init, fine-tuned downstream."""
