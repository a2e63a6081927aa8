"""Data: the column contract, the source, the schema and the train/test split."""
