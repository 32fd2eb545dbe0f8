# device type (to be written)
