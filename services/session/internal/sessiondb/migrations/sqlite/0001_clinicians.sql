CREATE TABLE clinicians (
    clinician_id             TEXT PRIMARY KEY NOT NULL,
    login_active             INTEGER NOT NULL,
    products                 TEXT NOT NULL,
    "groups"                 TEXT NOT NULL,
    send_entry_identifier    TEXT,
    contract_expiry_eod_date TEXT,
    created                  INTEGER NOT NULL,
    created_by               TEXT NOT NULL,
    modified                 INTEGER NOT NULL,
    modified_by              TEXT NOT NULL
);

CREATE UNIQUE INDEX clinicians_send_entry_identifier_key
    ON clinicians (send_entry_identifier)
    WHERE send_entry_identifier IS NOT NULL;
