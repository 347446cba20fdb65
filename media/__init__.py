"""Files in and out, for every package: regular-file checks (`media.files`), videos and
animations (`media.video`), writes inside owned folders that never follow links
(`media.owned`), folder locks (`media.locks`), a dataset's shard index (`media.shardindex`)
and workers that die with their command (`media.lifetime`)."""
