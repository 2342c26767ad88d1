"""The application layer: transactions, files and the order of steps. Views and tasks stay thin."""
