SELECT 1 FROM {statements} LIMIT 1
