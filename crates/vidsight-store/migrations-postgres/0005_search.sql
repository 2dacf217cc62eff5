-- Full-text search over titles and the text of insights (transcripts, on-screen text, labels,
-- chapters, summaries as analyses produce them), with the time range each entry covers.
-- The 'simple' configuration: no language-specific stemming, so every language matches words;
-- `folded` is the text lower-cased without accents (folded by the application, as queries are).

CREATE TABLE search_index (
    id       BIGSERIAL PRIMARY KEY,
    text     TEXT NOT NULL,
    folded   TEXT NOT NULL,
    video_id TEXT NOT NULL,
    owner_id TEXT,
    kind     TEXT NOT NULL,
    start_s  DOUBLE PRECISION,
    end_s    DOUBLE PRECISION,
    document tsvector GENERATED ALWAYS AS (to_tsvector('simple', folded)) STORED
);
CREATE INDEX search_index_document ON search_index USING GIN (document);
CREATE INDEX search_index_video ON search_index (video_id);
CREATE INDEX search_index_owner ON search_index (owner_id);
INSERT INTO search_index (text, folded, video_id, owner_id, kind, start_s, end_s)
    SELECT filename, lower(filename), id, owner_id, 'title', NULL, NULL FROM videos;
