-- Awb 9:10/9:11(2)/9:12(1): the person whose conduct the complaint is about is informed.
ALTER TABLE complaints ADD COLUMN subject_person TEXT;
-- Awb 9:11(3): a delay beyond the procedure's limit needs the complainant's written agreement;
-- what staff recorded of it, cleared once an extension used it.
ALTER TABLE complaints ADD COLUMN extension_agreement TEXT;
