-- Knowledge entries carry the label of the run or request that wrote them, so a fact an agent set after reading
-- untrusted content stays untrusted when it reaches the next prompt. Entries written before this were not
-- labelled; nothing says they were clean, so agent-written ones are marked as of unknown origin.
ALTER TABLE knowledge ADD COLUMN taint TEXT NOT NULL DEFAULT '[]';
UPDATE knowledge SET taint = '["unlabelled"]' WHERE set_by LIKE 'agent:%';
-- An action's result has a label of its own: the proposing run's label joined with the origin of what the action
-- read (command output, a file, an HTTP response, tool output, a labelled knowledge entry).
ALTER TABLE actions ADD COLUMN result_taint TEXT NOT NULL DEFAULT '[]';
UPDATE actions SET result_taint = taint;
