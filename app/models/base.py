"""A table model over a list of sdk records, updated by diffing (rows removed, appended,
reordered, changed) so that selections and scroll positions survive every refresh."""
from __future__ import annotations

from typing import Any, Hashable, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Index = QModelIndex | QPersistentModelIndex

#: the record behind a row (any column)
RecordRole = Qt.ItemDataRole.UserRole + 1
#: the record's key (job id, subject id …)
KeyRole = Qt.ItemDataRole.UserRole + 2


class RecordTableModel(QAbstractTableModel):
    """Subclasses set ``columns`` and implement :meth:`cell`; ``key`` defaults to ``record.id``."""

    columns: tuple[str, ...] = ("Name",)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        self._pos: dict[Hashable, int] = {}

    # -- records ------------------------------------------------------------------------
    def key(self, record: Any) -> Hashable:
        return record.id

    def records(self) -> list[Any]:
        return list(self._rows)

    def record(self, row: int) -> Any:
        return self._rows[row]

    def row_of(self, key: Hashable) -> int | None:
        return self._pos.get(key)

    def _reindex(self) -> None:
        self._pos = {self.key(r): i for i, r in enumerate(self._rows)}

    def set_records(self, new: Sequence[Any]) -> None:
        """Make the rows equal ``new`` with the smallest visible change."""
        new = list(new)
        new_keys = [self.key(r) for r in new]
        by_key = dict(zip(new_keys, new))
        old_by_key = {self.key(r): r for r in self._rows}
        changed = {k for k, r in by_key.items() if k in old_by_key and old_by_key[k] != r}
        for row in reversed(range(len(self._rows))):
            if self.key(self._rows[row]) not in by_key:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        added = [r for r in new if self.key(r) not in old_by_key]
        if added:
            n = len(self._rows)
            self.beginInsertRows(QModelIndex(), n, n + len(added) - 1)
            self._rows.extend(added)
            self.endInsertRows()
        if [self.key(r) for r in self._rows] != new_keys:
            self.layoutAboutToBeChanged.emit()
            old_rows = self._rows
            new_pos = {k: i for i, k in enumerate(new_keys)}
            for idx in self.persistentIndexList():
                k = self.key(old_rows[idx.row()])
                self.changePersistentIndex(idx, self.index(new_pos[k], idx.column()))
            self._rows = [by_key[k] for k in new_keys]
            self._reindex()
            self.layoutChanged.emit()
        else:
            self._rows = [by_key[k] for k in new_keys]
        self._reindex()
        for k in changed:
            self.refresh_row(self._pos[k])

    def replace_record(self, record: Any) -> None:
        """Swap in a newer copy of one record (same key) and repaint its row."""
        row = self._pos.get(self.key(record))
        if row is not None:
            self._rows[row] = record
            self.refresh_row(row)

    def refresh_row(self, row: int, first_col: int = 0, last_col: int | None = None,
                    roles: Sequence[int] = ()) -> None:
        last = self.columnCount() - 1 if last_col is None else last_col
        self.dataChanged.emit(self.index(row, first_col), self.index(row, last), list(roles))

    # -- Qt -------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.columns):
            return self.columns[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record = self._rows[index.row()]
        if role == RecordRole:
            return record
        if role == KeyRole:
            return self.key(record)
        return self.cell(record, index.row(), index.column(), role)

    def cell(self, record: Any, row: int, column: int, role: int) -> Any:
        raise NotImplementedError
