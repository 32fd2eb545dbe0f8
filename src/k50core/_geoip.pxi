# GeoIP (to be written)
