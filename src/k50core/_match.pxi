# condition programs and matcher (to be written)
