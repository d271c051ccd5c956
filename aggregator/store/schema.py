"""The SQLite schema as an ordered list of migrations; PRAGMA user_version counts those applied.

A migration is only ever appended, never edited, so every database can be brought up to date.
"""

MIGRATIONS = [
    # 1: posts, their categories and tags, sources, full-text index
    """
    CREATE TABLE posts (
        num INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        title TEXT NOT NULL,
        link TEXT NOT NULL,
        link_key TEXT NOT NULL,
        guid TEXT NOT NULL,
        date TEXT NOT NULL,
        updated TEXT,
        first_seen TEXT NOT NULL,
        author TEXT NOT NULL DEFAULT '',
        summary TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL DEFAULT '',
        categories TEXT NOT NULL DEFAULT '[]',
        tags TEXT NOT NULL DEFAULT '[]',
        enclosures TEXT NOT NULL DEFAULT '[]',
        content_hash TEXT NOT NULL,
        dated INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX posts_date ON posts(date DESC);
    CREATE INDEX posts_source_date ON posts(source, date DESC);
    CREATE INDEX posts_link_key ON posts(link_key);
    CREATE TABLE post_categories (
        slug TEXT NOT NULL, post INTEGER NOT NULL, date TEXT NOT NULL, PRIMARY KEY (slug, post)
    ) WITHOUT ROWID;
    CREATE INDEX post_categories_newest ON post_categories(slug, date DESC);
    CREATE INDEX post_categories_post ON post_categories(post);
    CREATE TABLE post_tags (
        slug TEXT NOT NULL, post INTEGER NOT NULL, date TEXT NOT NULL, PRIMARY KEY (slug, post)
    ) WITHOUT ROWID;
    CREATE INDEX post_tags_newest ON post_tags(slug, date DESC);
    CREATE INDEX post_tags_post ON post_tags(post);
    CREATE TABLE categories (slug TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE tags (slug TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE sources (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL DEFAULT '',
        etag TEXT NOT NULL DEFAULT '',
        last_modified TEXT NOT NULL DEFAULT '',
        last_fetch TEXT,
        last_success TEXT,
        http_status INTEGER,
        result TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        warning TEXT NOT NULL DEFAULT '',
        new INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL DEFAULT 0,
        final_url TEXT NOT NULL DEFAULT '',
        elapsed_ms INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        next_due TEXT,
        gone INTEGER NOT NULL DEFAULT 0,
        moved_to TEXT NOT NULL DEFAULT ''
    );
    CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2');
    """,
    # 2: full article text: per post, whether its article is owed, done or given up; per source, the
    # last article failure
    """
    ALTER TABLE posts ADD COLUMN article_status TEXT NOT NULL DEFAULT '';
    ALTER TABLE posts ADD COLUMN article_tries INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX posts_article_pending ON posts(source, article_status, date DESC);
    ALTER TABLE sources ADD COLUMN article_error TEXT NOT NULL DEFAULT '';
    """,
    # 3: "newest posts of a category/tag" read straight off an index, ties broken by post number,
    # so the cost does not grow with the size of the category
    """
    DROP INDEX post_categories_newest;
    CREATE INDEX post_categories_newest ON post_categories(slug, date DESC, post DESC);
    DROP INDEX post_tags_newest;
    CREATE INDEX post_tags_newest ON post_tags(slug, date DESC, post DESC);
    DROP INDEX posts_date;
    CREATE INDEX posts_date ON posts(date DESC, num DESC);
    """,
    # 4: which post has had a guid first (two sources numbering their entries 1, 2, 3...), so the
    # feeds keep that guid for it and give later posts their own ids, the same at every build
    """
    CREATE INDEX posts_guid ON posts(guid, num) WHERE guid != '';
    """,
    # 5: the source whose settings fetch a post's article when it is not the post's own: the same
    # article reached through a source without full_text first, then through one with it
    """
    ALTER TABLE posts ADD COLUMN article_source TEXT NOT NULL DEFAULT '';
    CREATE INDEX posts_article_source ON posts(article_source, article_status, date DESC) WHERE article_source != '';
    """,
    # 6: the ids of undated posts retention deleted: their entries are still in the feed, and stored
    # again they would come back dated "now", as new posts
    """
    CREATE TABLE retired_posts (id TEXT PRIMARY KEY, retired TEXT NOT NULL) WITHOUT ROWID;
    """,
    # 7: a post reached through several sources (the same article) keeps each one's categories and
    # tags apart ({source: [...]}; '{}' while it has one source), so that an edit from one source,
    # or a category renamed in another, changes only that source's share. Validators are
    # forgotten once, so every source's next fetch is a full one that records its share. And the
    # sources `sources reset` asked a running daemon to poll now.
    """
    ALTER TABLE posts ADD COLUMN categories_by_source TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE posts ADD COLUMN tags_by_source TEXT NOT NULL DEFAULT '{}';
    UPDATE sources SET etag = '', last_modified = '';
    CREATE TABLE source_resets (name TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
    # 8: runs that store posts and have not published them yet (`store.runs`): one killed between
    # the two leaves its note, and the next run builds everything
    """
    CREATE TABLE unpublished_runs (run TEXT PRIMARY KEY, pid INTEGER NOT NULL, noted TEXT NOT NULL) WITHOUT ROWID;
    """,
    # 9: the category slugs a source's posts were last stored with (JSON; '' before this): when
    # feeds.yaml gives the source other ones, its stored posts move, not only those still in its feed
    """
    ALTER TABLE sources ADD COLUMN categories TEXT NOT NULL DEFAULT '';
    """,
    # 10: the posts merged from several sources, found without reading every post: a category moved
    # in feeds.yaml must reach each source's share of them, and a scan of the whole table per source
    # cost a rename shared by 1,000 sources about a minute
    """
    CREATE INDEX posts_shared ON posts(num) WHERE categories_by_source != '{}';
    """,
    # 11: whether a post's guid was another post's when it was stored (two sources numbering their
    # entries 1, 2, 3...): the feeds give such a post ids of its own for good. Worked out from the
    # posts stored (the first with a guid has it), it moved to the next post when retention deleted
    # the first, and readers saw that post again as new
    """
    ALTER TABLE posts ADD COLUMN guid_taken INTEGER NOT NULL DEFAULT 0;
    UPDATE posts SET guid_taken = 1 WHERE guid != '' AND EXISTS (
        SELECT 1 FROM posts AS earlier
        WHERE earlier.guid = posts.guid AND earlier.guid != '' AND earlier.num < posts.num
    );
    """,
]
