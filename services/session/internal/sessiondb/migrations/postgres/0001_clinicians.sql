CREATE TABLE clinicians (
    clinician_id             text PRIMARY KEY,
    login_active             boolean NOT NULL,
    products                 text NOT NULL,
    "groups"                 text NOT NULL,
    send_entry_identifier    text,
    contract_expiry_eod_date text,
    created                  timestamptz NOT NULL,
    created_by               text NOT NULL,
    modified                 timestamptz NOT NULL,
    modified_by              text NOT NULL
);

CREATE UNIQUE INDEX clinicians_send_entry_identifier_key
    ON clinicians (send_entry_identifier)
    WHERE send_entry_identifier IS NOT NULL;
