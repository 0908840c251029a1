"""Briefings: the period 情况报告 (day / ISO week / month) and an incident's 专报 / 续报.

`periods` is pure date maths, `data` reads the database into dataclasses, `compose` puts them
into words, `charts` draws the images, `render` writes md / html / pdf / docx, `flows` ties them
together for the CLI and the web.
"""
