-- Full-text search over titles and the text of insights (transcripts, on-screen text, labels,
-- chapters, summaries as analyses produce them), with the time range each entry covers.
-- An FTS5 table keeps its own copy of the text; rows go explicitly with their video.
CREATE VIRTUAL TABLE search_index USING fts5(
    text,
    video_id UNINDEXED,
    owner_id UNINDEXED,
    kind UNINDEXED,
    start_s UNINDEXED,
    end_s UNINDEXED,
    folded UNINDEXED, -- for PostgreSQL's sake (FTS5 folds accents itself); kept empty here
    tokenize = 'unicode61 remove_diacritics 2'
);
-- what existing videos are called
INSERT INTO search_index (text, video_id, owner_id, kind, start_s, end_s, folded)
    SELECT filename, id, owner_id, 'title', NULL, NULL, '' FROM videos;
