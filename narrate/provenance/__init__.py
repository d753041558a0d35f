"""Content Credentials (C2PA) on narrate's outputs: signed manifests inside narration.wav, narration.mp3
and video.mp4 that say the voice is synthetic, which model spoke it, and for a clone under which consent;
and their verification, by anyone, with c2pa's own Reader.

The modules, in the order a render uses them (the package imports none of them itself, so reading a
render folder's record does not load the C2PA library)::

    config.render_signing(settings, voice)     # Signing | None; ConfigError when a clone must be signed
    claims.narration_claims(timeline, voice, script_sha256)   # what the credentials say
    sign.sign_in_place(path, SignJob(claims, title), signing) # signed, read back, renamed into place
    verify.verify_file(path, trust_list)       # Verification: trusted | untrusted | invalid | missing
    record.load_provenance(path)               # provenance.json: the verifications of a render
    devcert.create_development_certificate(folder)            # `narrate provenance init`
"""
