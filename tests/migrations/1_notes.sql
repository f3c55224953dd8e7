-- The table the database-per-test scenarios write.
CREATE TABLE notes (id INT PRIMARY KEY, author VARCHAR(40) NOT NULL);
