"""Notice templates (package data): first line the subject, then the ja and en sections."""
