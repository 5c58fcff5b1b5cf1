/**
 * Seed 000's event-type table: every server event carries its priority and a bilingual message.
 * Data only; `describeEvent` is the one lookup.
 */
export type Priority = 'low' | 'medium' | 'high' | 'critical';

export interface EventTypeInfo {
  readonly priority: Priority;
  readonly message: string;
  readonly messageAr: string;
}

export const EVENT_TYPES: Readonly<Record<string, EventTypeInfo>> = {
  'field.updated': { priority: 'medium', message: 'Field data updated', messageAr: 'تم تحديث بيانات الحقل' },
  'field.created': { priority: 'medium', message: 'New field created', messageAr: 'تم إنشاء حقل جديد' },
  'field.deleted': { priority: 'medium', message: 'Field deleted', messageAr: 'تم حذف الحقل' },
  'weather.alert': { priority: 'high', message: 'Important weather alert', messageAr: 'تنبيه طقس مهم' },
  'weather.updated': { priority: 'low', message: 'Weather data updated', messageAr: 'تم تحديث بيانات الطقس' },
  'satellite.ready': { priority: 'low', message: 'Satellite imagery ready', messageAr: 'صور الأقمار الصناعية جاهزة' },
  'satellite.processing': { priority: 'low', message: 'Processing satellite imagery', messageAr: 'جارٍ معالجة صور الأقمار الصناعية' },
  'satellite.failed': { priority: 'medium', message: 'Satellite processing failed', messageAr: 'فشلت معالجة صور الأقمار الصناعية' },
  'ndvi.updated': { priority: 'low', message: 'NDVI data updated', messageAr: 'تم تحديث بيانات مؤشر NDVI' },
  'ndvi.analysis.ready': { priority: 'low', message: 'NDVI analysis completed', messageAr: 'اكتمل تحليل مؤشر NDVI' },
  'inventory.low_stock': { priority: 'medium', message: 'Low stock alert', messageAr: 'تنبيه انخفاض المخزون' },
  'inventory.out_of_stock': { priority: 'high', message: 'Out of stock', messageAr: 'نفد المخزون' },
  'inventory.updated': { priority: 'low', message: 'Stock updated', messageAr: 'تم تحديث المخزون' },
  'crop.disease.detected': { priority: 'high', message: 'Disease detected', messageAr: 'تم اكتشاف مرض' },
  'crop.pest.detected': { priority: 'high', message: 'Pest detected', messageAr: 'تم اكتشاف آفة' },
  'crop.health.alert': { priority: 'high', message: 'Health issue detected', messageAr: 'تم اكتشاف مشكلة صحية' },
  'spray.window.optimal': { priority: 'medium', message: 'Optimal spray window', messageAr: 'نافذة الرش المثلى' },
  'spray.window.warning': { priority: 'medium', message: 'Spray window warning', messageAr: 'تحذير نافذة الرش' },
  'spray.scheduled': { priority: 'low', message: 'Spray operation scheduled', messageAr: 'تمت جدولة عملية الرش' },
  'chat.message': { priority: 'low', message: 'New message', messageAr: 'رسالة جديدة' },
  'chat.typing': { priority: 'low', message: 'User typing', messageAr: 'المستخدم يكتب' },
  'chat.read': { priority: 'low', message: 'Message read', messageAr: 'تمت قراءة الرسالة' },
  'task.created': { priority: 'low', message: 'Task created', messageAr: 'تم إنشاء مهمة' },
  'task.updated': { priority: 'low', message: 'Task updated', messageAr: 'تم تحديث المهمة' },
  'task.completed': { priority: 'low', message: 'Task completed', messageAr: 'تم إكمال المهمة' },
  'task.overdue': { priority: 'medium', message: 'Task overdue', messageAr: 'المهمة متأخرة' },
  'iot.reading': { priority: 'low', message: 'Sensor reading', messageAr: 'قراءة المستشعر' },
  'iot.alert': { priority: 'high', message: 'Sensor alert', messageAr: 'تنبيه المستشعر' },
  'iot.offline': { priority: 'medium', message: 'Sensor offline', messageAr: 'المستشعر غير متصل' },
  'system.notification': { priority: 'medium', message: 'System notification', messageAr: 'إشعار النظام' },
  sync_required: { priority: 'low', message: 'Sync required', messageAr: 'المزامنة مطلوبة' },
};

/** What an event type not in the table gets: delivered all the same, at low priority. */
export const UNKNOWN_EVENT_TYPE: EventTypeInfo = { priority: 'low', message: 'Event received', messageAr: 'تم استلام حدث' };

export function describeEvent(eventType: string): EventTypeInfo {
  return Object.hasOwn(EVENT_TYPES, eventType) ? EVENT_TYPES[eventType]! : UNKNOWN_EVENT_TYPE;
}

export const PRIORITIES: readonly Priority[] = ['low', 'medium', 'high', 'critical'];

export function isPriority(value: unknown): value is Priority {
  return typeof value === 'string' && (PRIORITIES as readonly string[]).includes(value);
}
