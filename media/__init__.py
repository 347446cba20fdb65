"""Files in and out, for every package: regular-file checks (`media.files`), videos and
animations (`media.video`)."""
