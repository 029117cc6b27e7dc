-- Scheduling state of a calendar object resource (RFC 6638), kept beside
-- its other columns and left alone by a client's PUT, which replaces the
-- source only.
-- schedule_tag: the Schedule-Tag (RFC 6638 §3.2.10), without quotes; NULL
-- for an object that is not a scheduling object resource. It changes with
-- the changes an attendee or organizer must see, not when the server merges
-- a REPLY into the organizer's copy or writes SCHEDULE-STATUS.
ALTER TABLE groupware_objects ADD COLUMN schedule_tag TEXT;
-- On an attendee's copy: SEQUENCE and DTSTAMP (UTC seconds) of the last
-- message from the organizer applied to it. They order the organizer's
-- next messages (RFC 5546 §2.1.5), whatever SEQUENCE the attendee's own
-- client wrote into the copy since.
ALTER TABLE groupware_objects ADD COLUMN organizer_sequence BIGINT;
ALTER TABLE groupware_objects ADD COLUMN organizer_stamp BIGINT;
