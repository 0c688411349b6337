"""The book: loan officers, contacts (people) and their loans."""
