"""Files in and out, for every package: regular-file checks, videos and animations."""
