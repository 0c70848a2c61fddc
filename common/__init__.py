"""What the gateway and the workers share: settings, database, schemas, embedders, queue names."""
