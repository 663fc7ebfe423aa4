-- The tool ids of the calls that answer a query, in call order
-- (featurestore.Query.Calls): pseudo-sessions make one decision per call.
-- Empty for queries imported before, which is what they were read as.
ALTER TABLE queries ADD COLUMN IF NOT EXISTS calls text[] NOT NULL DEFAULT '{}';
