print("BareHandler: see make bench")
