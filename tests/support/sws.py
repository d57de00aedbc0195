"""Building legacy ``.sws`` archives in memory (tar members and the worksheet settings
pickle), for the import, quota and fuzz tests."""
import io
import tarfile


def sws_with(members, mode='w:bz2'):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def file_member(name, content):
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def minimal_members(conf_pickle):
    return [file_member('sage_worksheet/worksheet_conf.pickle', conf_pickle),
            file_member('sage_worksheet/worksheet.html', b'{{{id=0|\n1+1\n///\n2\n}}}\n')]
